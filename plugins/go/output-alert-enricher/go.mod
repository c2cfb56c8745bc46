// output-alert-enricher: a plant-monitor enrich plugin, built as a WebAssembly component by ./build.sh.
// The module path is the import path the generated glue (gen/, see build.sh) expects of this package.
module wit_component/export_plant_monitor_plugin_enrich

go 1.27.1

//go:build wasip1

// output-alert-enricher: labels an event `alert=over-capacity` when the plant's latest output
// exceeds its nameplate capacity, or `alert=out-of-range` when the output falls outside the
// manifest's optional `min_output_mw`..`max_output_mw` bounds. Events without an `after` image or
// without an output reading pass through untouched. The Go port of
// plugins/examples/output-alert-enricher: the same labels, logs and error messages.
//
// Built for wasip1 only, because the bindings it uses exist only there; logic.go holds the
// decisions, which `go test` checks on this machine.
package export_plant_monitor_plugin_enrich

import (
	"sync"

	host "wit_component/plant_monitor_plugin_host"
	types "wit_component/plant_monitor_plugin_types"

	witTypes "go.bytecodealliance.org/pkg/wit/types"
)

// alertKey is the label key this plugin owns; routers (such as `fuel-router`) look for it.
const alertKey = "alert"

// Enrich is the `enrich` function of wit/plugin.wit.
func Enrich(event types.ChangeEvent) witTypes.Result[types.ChangeEvent, string] {
	bounds, err := manifestBounds()
	if err != nil {
		return witTypes.Err[types.ChangeEvent](err.Error())
	}
	if event.After.IsSome() {
		plant := event.After.Some()
		if plant.OutputMw.IsSome() {
			if alert := bounds.Alert(plant.OutputMw.Some(), plant.CapacityMw); alert != "" {
				event.Labels = setLabel(event.Labels, alertKey, alert)
			}
		}
	}
	return witTypes.Ok[types.ChangeEvent, string](event)
}

// manifestBounds parses the bounds once per instance: the manifest cannot change under a live
// instance, and a bad value is kept as well so every event reports it, not just the first. It runs
// on the first event, not at start-up, where the host's imports may not be called yet.
var manifestBounds = sync.OnceValues(func() (Bounds, error) {
	lower, err := readNumber("min_output_mw")
	if err != nil {
		return Bounds{}, err
	}
	upper, err := readNumber("max_output_mw")
	if err != nil {
		return Bounds{}, err
	}
	return Bounds{Min: lower, Max: upper}, nil
})

// readNumber reads an optional finite number from the manifest's `[config]` table; nil when unset.
func readNumber(key string) (*float64, error) {
	raw := host.Config(key)
	if raw.IsNone() {
		host.Log(host.Level_Debug, key+" not set: no bound")
		return nil, nil
	}
	host.Log(host.Level_Debug, key+" = "+Quoted(raw.Some()))
	value, err := ParseFinite(key, raw.Some())
	if err != nil {
		return nil, err
	}
	return &value, nil
}

// setLabel replaces the value of an existing label rather than adding a second one: sinks receive
// labels as a JSON object, where a duplicate key would silently keep only one of the values.
func setLabel(labels []witTypes.Tuple2[string, string], key, value string) []witTypes.Tuple2[string, string] {
	for i := range labels {
		if labels[i].F0 == key {
			labels[i].F1 = value
			return labels
		}
	}
	return append(labels, witTypes.Tuple2[string, string]{F0: key, F1: value})
}

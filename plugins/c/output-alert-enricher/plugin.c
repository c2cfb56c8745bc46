// Example enrich plugin, the C twin of plugins/examples/output-alert-enricher: labels an event
// `alert=over-capacity` when the plant's latest output exceeds its nameplate capacity, or
// `alert=out-of-range` when the output falls outside the manifest's optional
// `min_output_mw`..`max_output_mw` bounds. Events without an `after` image or without an output
// reading pass through untouched.
#include "config.h"
#include "enrich_plugin.h"
#include "logic.h"

// Reads optional number `key` from the manifest into `*value`/`*has`; false with `why` if bad.
static bool read_number(const char *key, bool *has, double *value, char *why, size_t why_len) {
    enrich_plugin_string_t name, raw;
    enrich_plugin_string_set(&name, key);
    *has = plant_monitor_plugin_host_config(&name, &raw);
    if (!*has) {
        return true;
    }
    bool ok = parse_number(key, (const char *)raw.ptr, raw.len, value, why, why_len);
    enrich_plugin_string_free(&raw);
    return ok;
}

// The bounds, read once per instance: the manifest cannot change under a live instance, and a bad
// value is kept as well so every event reports it, not just the first.
static bool bounds(bounds_t *out, const char **why) {
    static bool read, ok;
    static bounds_t cached;
    static char reason[200];
    if (!read) {
        read = true;
        ok = read_number("min_output_mw", &cached.has_min, &cached.min, reason, sizeof reason) &&
             read_number("max_output_mw", &cached.has_max, &cached.max, reason, sizeof reason);
    }
    *out = cached;
    *why = reason;
    return ok;
}

// Replaces the value of an existing label rather than adding a second one: sinks receive labels as
// a JSON object, where a duplicate key would silently keep only one of the values.
static void set_label(enrich_plugin_list_tuple2_string_string_t *labels, const char *key, const char *value) {
    size_t key_len = strlen(key);
    for (size_t i = 0; i < labels->len; i++) {
        enrich_plugin_tuple2_string_string_t *label = &labels->ptr[i];
        if (label->f0.len == key_len && memcmp(label->f0.ptr, key, key_len) == 0) {
            enrich_plugin_string_free(&label->f1);
            enrich_plugin_string_dup(&label->f1, value);
            return;
        }
    }
    // An empty list may arrive with a dangling pointer (the canonical ABI allocates nothing for
    // it), which realloc must not see.
    size_t size = (labels->len + 1) * sizeof *labels->ptr;
    labels->ptr = labels->len == 0 ? malloc(size) : realloc(labels->ptr, size);
    enrich_plugin_string_dup(&labels->ptr[labels->len].f0, key);
    enrich_plugin_string_dup(&labels->ptr[labels->len].f1, value);
    labels->len++;
}

bool exports_plant_monitor_plugin_enrich_enrich(exports_plant_monitor_plugin_enrich_change_event_t *event,
                                                exports_plant_monitor_plugin_enrich_change_event_t *ret,
                                                enrich_plugin_string_t *err) {
    bounds_t limits;
    const char *why;
    if (!bounds(&limits, &why)) {
        enrich_plugin_string_dup(err, why);
        plant_monitor_plugin_types_change_event_free(event);
        return false;
    }
    plant_monitor_plugin_types_power_plant_t *plant = &event->after.val;
    if (event->after.is_some && plant->output_mw.is_some) {
        const char *label = alert(limits, plant->output_mw.val, plant->capacity_mw);
        if (label != NULL) {
            set_label(&event->labels, "alert", label);
        }
    }
    // The event moves into the answer; the host frees the answer once it has read it.
    *ret = *event;
    return true;
}

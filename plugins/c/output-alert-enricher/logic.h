// output-alert-enricher's decision, apart from the bindings so test.c can test it natively.
#ifndef LOGIC_H
#define LOGIC_H

#include <stdbool.h>
#include <stddef.h>

// The optional output bounds from the manifest, inclusive at both ends.
typedef struct {
    bool has_min, has_max;
    double min, max;
} bounds_t;

// The alert for `output` against `capacity` and the bounds, or NULL. Over capacity wins over out of
// range: it is the more specific, more urgent fact.
static const char *alert(bounds_t bounds, double output, double capacity) {
    if (output > capacity) {
        return "over-capacity";
    }
    if ((bounds.has_min && output < bounds.min) || (bounds.has_max && output > bounds.max)) {
        return "out-of-range";
    }
    return NULL;
}

#endif

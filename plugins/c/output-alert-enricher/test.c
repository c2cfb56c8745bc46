// Tests of output-alert-enricher's logic, natively: ./build.sh test
#include <assert.h>
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "logic.h"

int main(void) {
    bounds_t none = {0};
    bounds_t zero_to_100 = {.has_min = true, .has_max = true, .min = 0, .max = 100};
    assert(strcmp(alert(none, 11, 10), "over-capacity") == 0);
    assert(alert(none, 10, 10) == NULL);
    assert(strcmp(alert(zero_to_100, -1, 10), "out-of-range") == 0);
    assert(strcmp(alert(zero_to_100, 150, 100), "over-capacity") == 0);
    assert(strcmp(alert(zero_to_100, 101, 200), "out-of-range") == 0);

    double value;
    char why[200];
    assert(parse_number("k", " -3.5 ", 6, &value, why, sizeof why) && value == -3.5);
    assert(!parse_number("k", "1,5", 3, &value, why, sizeof why));
    assert(strcmp(why, "k: \"1,5\" is not a number") == 0);
    puts("test.c: all passed");
    return 0;
}

// Reading the manifest's [config] strings as numbers, the way the Rust plugins do: surrounding
// whitespace is ignored; anything else that is not a plain decimal number (hex, "1,5", "inf",
// "nan", an empty string) is refused with a message naming the key.
#ifndef CONFIG_H
#define CONFIG_H

#include <ctype.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// Parses `len` bytes at `text` into `*value`. On failure writes why (naming `key`) into `why`.
static bool parse_number(const char *key, const char *text, size_t len, double *value, char *why,
                         size_t why_len) {
    while (len > 0 && isspace((unsigned char)text[0])) {
        text++;
        len--;
    }
    while (len > 0 && isspace((unsigned char)text[len - 1])) {
        len--;
    }
    char digits[64];
    bool plain = len > 0 && len < sizeof digits;
    for (size_t i = 0; plain && i < len; i++) {
        plain = strchr("0123456789+-.eE", text[i]) != NULL && text[i] != '\0';
    }
    if (plain) {
        memcpy(digits, text, len);
        digits[len] = '\0';
        char *end;
        *value = strtod(digits, &end);
        if (end == digits + len && isfinite(*value)) {
            return true;
        }
    }
    snprintf(why, why_len, "%s: \"%.*s\" is not a number", key, (int)(len < 100 ? len : 100), text);
    return false;
}

#endif

// The decisions of output-alert-enricher: plain Go that imports no bindings, so that `go test`
// checks them on this machine.
package export_plant_monitor_plugin_enrich

import (
	"errors"
	"math"
	"strconv"
	"strings"
	"unicode"
)

// Bounds are the optional output bounds from the manifest, inclusive at both ends; nil is no bound.
type Bounds struct {
	Min, Max *float64
}

// Alert is the alert for a plant with `output` of `capacity` megawatts, "" for none. Over capacity
// wins over out of range: it is the more specific, more urgent fact.
func (b Bounds) Alert(output, capacity float64) string {
	switch {
	case output > capacity:
		return "over-capacity"
	case b.Min != nil && output < *b.Min, b.Max != nil && output > *b.Max:
		return "out-of-range"
	}
	return ""
}

// ParseFinite is ParseNumber refusing "inf" and "NaN": as a bound they would silently change every
// answer.
func ParseFinite(key, raw string) (float64, error) {
	value, err := ParseNumber(key, raw)
	if err == nil && (math.IsInf(value, 0) || math.IsNaN(value)) {
		return 0, errors.New(key + ": " + Quoted(raw) + " is not a finite number")
	}
	return value, err
}

// ParseNumber reads config `key`'s text `raw` as Rust's `raw.trim().parse::<f64>()` does, so a
// plugin behaves the same in every language; the error is the message a Rust plugin gives.
func ParseNumber(key, raw string) (float64, error) {
	// strings.TrimSpace strips Unicode's White_Space, as Rust's trim() does.
	text := strings.TrimSpace(raw)
	if text == "" {
		return 0, errors.New(key + ": " + Quoted(raw) + " is not a number (cannot parse float from empty string)")
	}
	switch strings.ToLower(unsigned(text)) {
	case "inf", "infinity":
		if text[0] == '-' {
			return math.Inf(-1), nil
		}
		return math.Inf(1), nil
	case "nan":
		return math.NaN(), nil
	}
	if !decimal(text) {
		return 0, errors.New(key + ": " + Quoted(raw) + " is not a number (invalid float literal)")
	}
	// A decimal ParseFloat fails only out of range, where it gives ±Inf as Rust does.
	value, _ := strconv.ParseFloat(text, 64)
	return value, nil
}

// decimal tells whether `text` is a decimal number as Rust spells one: optionally signed ASCII
// digits with an optional point and exponent ("1", "-1.5", ".5", "5.", "1e3", "2E-3"). Checked
// first because strconv.ParseFloat would also take "0x10" and "1_000".
func decimal(text string) bool {
	mantissa, exponent, scientific := strings.Cut(strings.ToLower(unsigned(text)), "e")
	whole, fraction, _ := strings.Cut(mantissa, ".")
	if whole+fraction == "" || !digits(whole) || !digits(fraction) {
		return false
	}
	exponent = unsigned(exponent)
	return !scientific || exponent != "" && digits(exponent)
}

// unsigned is `text` without one leading sign.
func unsigned(text string) string {
	if strings.HasPrefix(text, "+") || strings.HasPrefix(text, "-") {
		return text[1:]
	}
	return text
}

// digits tells whether `text` holds ASCII digits only.
func digits(text string) bool {
	return strings.Trim(text, "0123456789") == ""
}

// Quoted is `text` in double quotes as Rust's `{:?}` writes it, so messages match a Rust plugin's.
func Quoted(text string) string {
	var quoted strings.Builder
	quoted.WriteByte('"')
	for _, r := range text {
		switch {
		case r == '\t':
			quoted.WriteString(`\t`)
		case r == '\r':
			quoted.WriteString(`\r`)
		case r == '\n':
			quoted.WriteString(`\n`)
		case r == '\\' || r == '"':
			quoted.WriteByte('\\')
			quoted.WriteRune(r)
		case r == 0:
			quoted.WriteString(`\0`)
		// Rust escapes what is not printable (control, format, separator other than the space,
		// unassigned) and combining marks.
		case !unicode.IsPrint(r) || unicode.In(r, unicode.Mn, unicode.Me):
			quoted.WriteString(`\u{` + strconv.FormatInt(int64(r), 16) + `}`)
		default:
			quoted.WriteRune(r)
		}
	}
	quoted.WriteByte('"')
	return quoted.String()
}

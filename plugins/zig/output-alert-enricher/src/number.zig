//! Rust's text rules for config values, so that a Zig plugin's answers and messages read byte for
//! byte as a Rust plugin's: `raw.trim().parse::<f64>()` (Zig's `std.fmt.parseFloat` alone would
//! also take "0x10", "1_000" and "inf " with a trailing space) and `format!("{raw:?}")`.

const std = @import("std");

/// A config value read as a number: the value, or the plugin error naming its key.
pub const Read = union(enum) {
    value: f64,
    /// Allocated with the allocator given to `read`; the caller frees it.
    problem: []u8,
};

/// Reads config `key`'s text `raw` as Rust's `raw.trim().parse::<f64>()` does; a refusal reads
/// `KEY: "RAW" is not a number (REASON)`, as `format!("{key}: {raw:?} is not a number ({e})")`.
pub fn read(gpa: std.mem.Allocator, key: []const u8, raw: []const u8) std.mem.Allocator.Error!Read {
    const err = if (parse(raw)) |value| return .{ .value = value } else |err| err;
    var problem: std.ArrayList(u8) = .empty;
    errdefer problem.deinit(gpa);
    try problem.print(gpa, "{s}: ", .{key});
    try appendQuoted(&problem, gpa, raw);
    try problem.print(gpa, " is not a number ({s})", .{reason(err)});
    return .{ .problem = try problem.toOwnedSlice(gpa) };
}

/// Why `parse` refused a text, spelled as Rust's `ParseFloatError` displays it.
pub const ParseError = error{ Empty, Invalid };

/// Rust's `ParseFloatError` message for `err`.
pub fn reason(err: ParseError) []const u8 {
    return switch (err) {
        error.Empty => "cannot parse float from empty string",
        error.Invalid => "invalid float literal",
    };
}

/// `raw.trim().parse::<f64>()`: decimal and exponent forms, `inf`, `infinity` and `nan` (any case),
/// each with an optional sign; nothing else. Infinities and NaN are returned, not refused.
pub fn parse(raw: []const u8) ParseError!f64 {
    const text = trim(raw);
    if (text.len == 0) return error.Empty;
    const unsigned = if (text[0] == '+' or text[0] == '-') text[1..] else text;
    const negative = text[0] == '-';
    for ([_][]const u8{ "inf", "infinity" }) |word| {
        if (std.ascii.eqlIgnoreCase(unsigned, word)) return if (negative) -std.math.inf(f64) else std.math.inf(f64);
    }
    if (std.ascii.eqlIgnoreCase(unsigned, "nan")) return std.math.nan(f64);
    if (!isDecimal(unsigned)) return error.Invalid;
    // The grammar is checked above; parseFloat rounds correctly, as Rust does.
    return std.fmt.parseFloat(f64, text) catch error.Invalid;
}

/// Digits with at most one `.` (at least one digit in all), then optionally `e`/`E`, a sign and digits.
fn isDecimal(s: []const u8) bool {
    var i: usize = 0;
    var digits: usize = 0;
    while (i < s.len and std.ascii.isDigit(s[i])) : (i += 1) digits += 1;
    if (i < s.len and s[i] == '.') {
        i += 1;
        while (i < s.len and std.ascii.isDigit(s[i])) : (i += 1) digits += 1;
    }
    if (digits == 0) return false;
    if (i < s.len and (s[i] == 'e' or s[i] == 'E')) {
        i += 1;
        if (i < s.len and (s[i] == '+' or s[i] == '-')) i += 1;
        const start = i;
        while (i < s.len and std.ascii.isDigit(s[i])) i += 1;
        if (i == start) return false;
    }
    return i == s.len;
}

/// Rust's `str::trim`: strips Unicode White_Space from both ends (not U+FEFF, not U+200B).
pub fn trim(s: []const u8) []const u8 {
    var start: ?usize = null;
    var end: usize = 0;
    var i: usize = 0;
    while (i < s.len) {
        const len, const cp = decode(s[i..]);
        if (!isWhiteSpace(cp)) {
            if (start == null) start = i;
            end = i + len;
        }
        i += len;
    }
    return if (start) |first| s[first..end] else s[s.len..];
}

fn isWhiteSpace(cp: u21) bool {
    return switch (cp) {
        0x09...0x0D, 0x20, 0x85, 0xA0, 0x1680, 0x2000...0x200A, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000 => true,
        else => false,
    };
}

/// The length and code point of the UTF-8 sequence at the start of `s`; a stray byte counts as
/// one character of its own (host strings are valid UTF-8, so this never happens in a plugin).
fn decode(s: []const u8) struct { usize, u21 } {
    const len = std.unicode.utf8ByteSequenceLength(s[0]) catch return .{ 1, s[0] };
    if (len > s.len) return .{ 1, s[0] };
    const cp = std.unicode.utf8Decode(s[0..len]) catch return .{ 1, s[0] };
    return .{ len, cp };
}

/// `text` in double quotes as Rust's `format!("{text:?}")` writes it, appended to `out`.
pub fn appendQuoted(out: *std.ArrayList(u8), gpa: std.mem.Allocator, text: []const u8) std.mem.Allocator.Error!void {
    try out.append(gpa, '"');
    var i: usize = 0;
    while (i < text.len) {
        const len, const cp = decode(text[i..]);
        switch (cp) {
            0 => try out.appendSlice(gpa, "\\0"),
            '\t' => try out.appendSlice(gpa, "\\t"),
            '\r' => try out.appendSlice(gpa, "\\r"),
            '\n' => try out.appendSlice(gpa, "\\n"),
            '\\' => try out.appendSlice(gpa, "\\\\"),
            '"' => try out.appendSlice(gpa, "\\\""),
            else => if (isEscaped(cp))
                try out.print(gpa, "\\u{{{x}}}", .{cp})
            else
                try out.appendSlice(gpa, text[i .. i + len]),
        }
        i += len;
    }
    try out.append(gpa, '"');
}

/// Characters Rust's `{:?}` writes as `\u{..}`: controls, separators but the space, format and
/// private-use characters, and the common combining marks. Exact for ASCII; beyond it this covers
/// the blocks config values meet in practice, not Rust's full Unicode tables (unassigned code points
/// and combining marks of other scripts print as themselves here, escaped in Rust).
fn isEscaped(cp: u21) bool {
    return switch (cp) {
        0x00...0x1F, 0x7F...0xA0, 0xAD, 0x300...0x36F, 0x600...0x605, 0x61C, 0x6DD, 0x1680, 0x180E,
        0x2000...0x200F, 0x2028...0x202F, 0x205F...0x206F, 0x20D0...0x20F0, 0x3000, 0xD800...0xF8FF,
        0xFE00...0xFE0F, 0xFE20...0xFE2F, 0xFEFF, 0xFFF0...0xFFFB, 0xFFFE, 0xFFFF, 0x1D173...0x1D17A,
        0xE0000...0xE0FFF, 0xF0000...0x10FFFF => true,
        else => false,
    };
}

fn expectQuoted(expected: []const u8, text: []const u8) !void {
    const gpa = std.testing.allocator;
    var out: std.ArrayList(u8) = .empty;
    defer out.deinit(gpa);
    try appendQuoted(&out, gpa, text);
    try std.testing.expectEqualStrings(expected, out.items);
}

test "numbers are read as Rust reads them" {
    try std.testing.expectEqual(@as(f64, 50), try parse("50"));
    try std.testing.expectEqual(@as(f64, 50), try parse(" 50 \t"));
    try std.testing.expectEqual(@as(f64, -3.5), try parse("-3.5"));
    try std.testing.expectEqual(@as(f64, 1000), try parse("1e3"));
    try std.testing.expectEqual(@as(f64, 0.5), try parse(".5"));
    try std.testing.expectEqual(@as(f64, 5), try parse("+5."));
    try std.testing.expectEqual(@as(f64, 7), try parse("\u{3000}7\u{a0}"));
    try std.testing.expect(std.math.isInf(try parse("inf")));
    try std.testing.expect(std.math.isInf(try parse("-Infinity")));
    try std.testing.expect(std.math.isNan(try parse("NaN")));
    try std.testing.expect(std.math.isInf(try parse("1e400")));
    try std.testing.expectError(error.Empty, parse(""));
    try std.testing.expectError(error.Empty, parse("  "));
    for ([_][]const u8{ "0x10", "abc", "1_000", ".", "1e", "1e+", "+", "--1", "1.2.3", "\u{feff}1", "infinite", "1 000" }) |bad| {
        try std.testing.expectError(error.Invalid, parse(bad));
    }
}

test "a refused number names its key and quotes the text" {
    const gpa = std.testing.allocator;
    const got = try read(gpa, "large_mw", "abc");
    defer gpa.free(got.problem);
    try std.testing.expectEqualStrings("large_mw: \"abc\" is not a number (invalid float literal)", got.problem);
    try std.testing.expectEqual(@as(f64, 1000), (try read(gpa, "large_mw", " 1e3")).value);
}

test "text is quoted as Rust's {:?} quotes it" {
    try expectQuoted("\"abc\"", "abc");
    try expectQuoted("\" 5\\t\\r\\n\\0\\\\\\\"'\"", " 5\t\r\n\x00\\\"'");
    try expectQuoted("\"\\u{1b}\\u{7f}\\u{a0}\\u{feff}\"", "\x1b\x7f\u{a0}\u{feff}");
    try expectQuoted("\"Zürich ☀ 水\"", "Zürich ☀ 水");
}

//! The decisions of output-alert-enricher, free of the bindings so that `zig test src/logic.zig`
//! runs them on this machine.

const std = @import("std");
const number = @import("number.zig");

/// The label key this plugin owns; routers (such as `fuel-router`) look for it.
pub const alert_key = "alert";

/// The optional output bounds from the manifest, inclusive at both ends.
pub const Bounds = struct {
    min: ?f64 = null,
    max: ?f64 = null,

    /// The alert for `output` megawatts from a plant of `capacity`, if any. Over capacity wins over
    /// out of range: it is the more specific, more urgent fact.
    pub fn alert(self: Bounds, output: f64, capacity: f64) ?[]const u8 {
        if (output > capacity) return "over-capacity";
        if (if (self.min) |min| output < min else false) return "out-of-range";
        if (if (self.max) |max| output > max else false) return "out-of-range";
        return null;
    }
};

/// A config value read as a bound: the number, or the plugin error naming `key`.
pub const Bound = union(enum) {
    value: f64,
    /// Owned by the caller.
    problem: []u8,
};

/// Reads config `key`'s text `raw` as the Rust example does: `raw.trim().parse::<f64>()`, then
/// refuses infinities and NaN (as a bound they would silently change every answer).
pub fn bound(gpa: std.mem.Allocator, key: []const u8, raw: []const u8) std.mem.Allocator.Error!Bound {
    switch (try number.read(gpa, key, raw)) {
        .problem => |problem| return .{ .problem = problem },
        .value => |value| if (std.math.isFinite(value)) return .{ .value = value },
    }
    var problem: std.ArrayList(u8) = .empty;
    errdefer problem.deinit(gpa);
    try problem.print(gpa, "{s}: ", .{key});
    try number.appendQuoted(&problem, gpa, raw);
    try problem.appendSlice(gpa, " is not a finite number");
    return .{ .problem = try problem.toOwnedSlice(gpa) };
}

test "over capacity wins over out of range, and the bounds are inclusive" {
    const bounds: Bounds = .{ .min = 10, .max = 100 };
    try std.testing.expectEqualStrings("over-capacity", bounds.alert(150, 120).?);
    try std.testing.expectEqualStrings("out-of-range", bounds.alert(110, 120).?);
    try std.testing.expectEqualStrings("out-of-range", bounds.alert(5, 120).?);
    try std.testing.expectEqual(null, bounds.alert(10, 120));
    try std.testing.expectEqual(null, bounds.alert(100, 120));
    try std.testing.expectEqual(null, (Bounds{}).alert(-5, 120));
}

fn expectProblem(expected: []const u8, raw: []const u8) !void {
    const gpa = std.testing.allocator;
    const got = try bound(gpa, "max_output_mw", raw);
    defer if (got == .problem) gpa.free(got.problem);
    try std.testing.expectEqualStrings(expected, got.problem);
}

test "bounds are read as the Rust example reads them" {
    const gpa = std.testing.allocator;
    for ([_][]const u8{ "50", " 50 ", "-3.5", "1e3" }, [_]f64{ 50, 50, -3.5, 1000 }) |raw, want| {
        try std.testing.expectEqual(want, (try bound(gpa, "min_output_mw", raw)).value);
    }
    try expectProblem("max_output_mw: \"\" is not a number (cannot parse float from empty string)", "");
    try expectProblem("max_output_mw: \"0x10\" is not a number (invalid float literal)", "0x10");
    try expectProblem("max_output_mw: \"abc\" is not a number (invalid float literal)", "abc");
    try expectProblem("max_output_mw: \"1_000\" is not a number (invalid float literal)", "1_000");
    try expectProblem("max_output_mw: \"inf\" is not a finite number", "inf");
    try expectProblem("max_output_mw: \" NaN\" is not a finite number", " NaN");
}

test {
    _ = number;
}

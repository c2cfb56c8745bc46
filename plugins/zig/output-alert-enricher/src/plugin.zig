//! output-alert-enricher in Zig: the same answers, logs and errors as the Rust example in
//! plugins/examples/output-alert-enricher. Labels an event `alert=over-capacity` when the plant's
//! latest output exceeds its nameplate capacity, or `alert=out-of-range` when the output falls
//! outside the manifest's optional `min_output_mw`..`max_output_mw` bounds. Events without an
//! `after` image or without an output reading pass through untouched.

const std = @import("std");
const host = @import("host.zig");
const logic = @import("logic.zig");
const number = @import("number.zig");
const c = host.c;

/// A panic traps; the default handler would print through WASI, which the host does not show.
pub const panic = std.debug.no_panic;

const Event = c.exports_plant_monitor_plugin_enrich_change_event_t;
const Label = c.enrich_plugin_tuple2_string_string_t;
const Labels = c.enrich_plugin_list_tuple2_string_string_t;

/// The bounds, or the error reading them, from the first event on: the manifest cannot change
/// under a live instance, and a bad value is kept as well so every event reports it, not just the first.
var cached: ?Bounds = null;

const Bounds = union(enum) {
    ok: logic.Bounds,
    /// Kept for the instance's life; each failing call hands the host a copy.
    err: []const u8,
};

/// The `enrich` export: true with the event in `ret`, or false with the reason in `err`. The
/// event is this function's: moved into `ret`, the glue frees it once the host has read it.
export fn exports_plant_monitor_plugin_enrich_enrich(event: *Event, ret: *Event, err: *host.String) bool {
    const bounds = cached orelse read: {
        cached = readBounds();
        break :read cached.?;
    };
    switch (bounds) {
        .err => |message| {
            c.exports_plant_monitor_plugin_enrich_change_event_free(event);
            err.* = host.owned(message);
            return false;
        },
        .ok => |ok| if (event.after.is_some and event.after.val.output_mw.is_some) {
            const plant = &event.after.val;
            if (ok.alert(plant.output_mw.val, plant.capacity_mw)) |alert| setLabel(&event.labels, logic.alert_key, alert);
        },
    }
    ret.* = event.*;
    return true;
}

fn readBounds() Bounds {
    // In this order, and the maximum is not read once the minimum failed, as in Rust.
    const min = switch (readBound("min_output_mw")) {
        .value => |value| value,
        .problem => |problem| return .{ .err = problem },
    };
    const max = switch (readBound("max_output_mw")) {
        .value => |value| value,
        .problem => |problem| return .{ .err = problem },
    };
    return .{ .ok = .{ .min = min, .max = max } };
}

/// An optional finite number from the manifest's `[config]` table, or the plugin error. Logs the
/// raw text, as the Rust example does.
fn readBound(key: []const u8) union(enum) { value: ?f64, problem: []const u8 } {
    var message: std.ArrayList(u8) = .empty;
    defer message.deinit(host.gpa);
    var raw = host.config(key) orelse {
        message.print(host.gpa, "{s} not set: no bound", .{key}) catch host.oom();
        host.log(.debug, message.items);
        return .{ .value = null };
    };
    defer host.free(&raw);
    message.print(host.gpa, "{s} = ", .{key}) catch host.oom();
    number.appendQuoted(&message, host.gpa, host.slice(raw)) catch host.oom();
    host.log(.debug, message.items);
    return switch (logic.bound(host.gpa, key, host.slice(raw)) catch host.oom()) {
        .value => |value| .{ .value = value },
        .problem => |problem| .{ .problem = problem },
    };
}

/// Replaces the value of an existing label (the first of that key) rather than adding a second
/// one: sinks receive labels as a JSON object, where a duplicate key would silently keep only one
/// of the values. The strings and the array are malloc'd: the glue frees them with free().
fn setLabel(labels: *Labels, key: []const u8, value: []const u8) void {
    if (labels.len > 0) for (labels.ptr[0..labels.len]) |*label| {
        if (std.mem.eql(u8, host.slice(label.f0), key)) {
            host.free(&label.f1);
            label.f1 = host.owned(value);
            return;
        }
    };
    // An empty list's pointer is not an allocation: the canonical ABI passes the alignment there.
    const old: ?*anyopaque = if (labels.len == 0) null else labels.ptr;
    const grown = std.c.realloc(old, (labels.len + 1) * @sizeOf(Label)) orelse host.oom();
    labels.ptr = @ptrCast(@alignCast(grown));
    labels.ptr[labels.len] = .{ .f0 = host.owned(key), .f1 = host.owned(value) };
    labels.len += 1;
}

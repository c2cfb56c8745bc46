//! The plugin's side of the C bindings: what the host offers (`log`, `config`) with Zig slices, and
//! the string conversions the bindings' ownership rules call for. `c` is gen/enrich_plugin.zig,
//! wit-bindgen's C header translated by `zig translate-c` (Zig 0.17 has no `@cImport`); the C glue
//! in gen/enrich_plugin.c calls this plugin's export and frees what it returns.
//!
//! Ownership, as the glue implements it: the export owns the event it is given (the glue frees only
//! what the export returns, after the host has read it); everything returned must be malloc'd, since
//! the glue frees it with free(); a string from `config` belongs to the caller; `log` only reads.

const std = @import("std");
pub const c = @import("bindings");

/// A component-model string: UTF-8 bytes and their length, no terminating zero.
pub const String = c.enrich_plugin_string_t;

/// Severity of a log message.
pub const Level = enum(c.plant_monitor_plugin_host_level_t) {
    trace = c.PLANT_MONITOR_PLUGIN_HOST_LEVEL_TRACE,
    debug = c.PLANT_MONITOR_PLUGIN_HOST_LEVEL_DEBUG,
    info = c.PLANT_MONITOR_PLUGIN_HOST_LEVEL_INFO,
    warn = c.PLANT_MONITOR_PLUGIN_HOST_LEVEL_WARN,
    @"error" = c.PLANT_MONITOR_PLUGIN_HOST_LEVEL_ERROR,
};

/// Writes `message` to the host's log, tagged with the plugin's name.
pub fn log(level: Level, message: []const u8) void {
    var borrowed_message = borrowed(message);
    c.plant_monitor_plugin_host_log(@intFromEnum(level), &borrowed_message);
}

/// The value of `key` in the `[config]` table of the plugin's manifest, if set. The caller owns
/// it: `free` it, or hand it back to the host inside a result.
pub fn config(key: []const u8) ?String {
    var borrowed_key = borrowed(key);
    var value: String = undefined;
    return if (c.plant_monitor_plugin_host_config(&borrowed_key, &value)) value else null;
}

/// Frees a string this plugin owns.
pub fn free(text: *String) void {
    c.enrich_plugin_string_free(text);
}

/// A string viewing `text`, for arguments the callee only reads.
pub fn borrowed(text: []const u8) String {
    return .{ .ptr = @constCast(text.ptr), .len = text.len };
}

/// A malloc'd copy of `text`, for strings handed to the host inside a result.
pub fn owned(text: []const u8) String {
    var copy: String = undefined;
    c.enrich_plugin_string_dup_n(&copy, text.ptr, text.len);
    return copy;
}

/// The bytes of a string. An empty one may have any pointer, even null.
pub fn slice(text: String) []const u8 {
    return if (text.len == 0) "" else text.ptr[0..text.len];
}

/// wasi-libc's malloc, for the plugin's own scratch memory.
pub const gpa = std.heap.c_allocator;

/// Out of memory: trap, as a Rust plugin aborts (the host reports a trapped plugin).
pub fn oom() noreturn {
    @trap();
}


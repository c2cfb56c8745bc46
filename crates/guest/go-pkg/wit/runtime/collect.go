// Added to go-pkg v0.4.0 by plant-monitor (with the collectIfDue call in runtime.go's Unpin).
//
// Go's collector reads the wall clock, a WASI import, and a component may not call imports from
// cabi_realloc, where the host hands an event over; a collection that started there trapped the
// plugin about every 40 large events (componentize-go issue 77: wasmtime 48's adapter pauses only
// the monotonic clock). So no collection starts by itself: one runs when due in Unpin, which the
// generated glue calls once the event is handed over, before the plugin's own code. Collecting
// before unpinning keeps the event's buffers alive until the glue has read them.

package runtime

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
)

func init() { debug.SetGCPercent(-1) }

// Allocated bytes so far and live bytes after the last collection, as Go's metrics count them.
var heap = []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}, {Name: "/gc/heap/live:bytes"}}
var allocatedAtLastCollection uint64

// collectIfDue collects once the bytes allocated since the last collection pass the live heap
// (GOGC=100, Go's default pacing), with 4 MiB at least.
func collectIfDue() {
	metrics.Read(heap)
	allocated, live := heap[0].Value.Uint64(), heap[1].Value.Uint64()
	if allocated-allocatedAtLastCollection >= max(live, 4<<20) {
		runtime.GC()
		metrics.Read(heap[:1])
		allocatedAtLastCollection = heap[0].Value.Uint64()
	}
}

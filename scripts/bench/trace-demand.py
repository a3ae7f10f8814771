#!/usr/bin/env python3
"""Where a command leaves the cores idle, from an execution trace.

    MEMENTO_TRACE=/tmp/x.trace memento restore ...
    go tool trace -d=parsed /tmp/x.trace | scripts/bench/trace-demand.py

Prints how long the run had 0, 1 and 2 or more goroutines running or
runnable (its demand for cores; on the 2-core benchmark machine, time with
a demand below 2 is a core the command leaves idle, whatever the load of
the machine), then the "restore file" regions (restore's MEMENTO_TRACE
regions): start, end and duration of each file, and of each staging sync.
Issue 18, session 9 (docs/benchmarks.md).
"""
import re
import sys

state = re.compile(r'StateTransition Time=(\d+) GoID=(\d+) (\w+)->(\w+)')
region = re.compile(r'G=(\d+) (RegionBegin|RegionEnd|Log) Time=(\d+).*?(?:Type="([^"]*)"|Message="([^"]*)")')
active = ('Running', 'Runnable')
t0 = None
events, rows, open_, msg = [], [], {}, {}
for line in sys.stdin:
    m = state.search(line)
    if m:
        t = int(m.group(1))
        t0 = t if t0 is None else t0
        d = int(m.group(4) in active) - int(m.group(3) in active)
        if d:
            events.append(((t - t0) / 1e9, d))
        continue
    m = region.search(line)
    if m and t0 is not None:
        g, kind, t = m.group(1), m.group(2), (int(m.group(3)) - t0) / 1e9
        if kind == 'RegionBegin':
            open_[(g, m.group(4))] = t
        elif kind == 'Log':
            msg[g] = m.group(5)
        else:
            start = open_.pop((g, m.group(4)), None)
            if start is not None:
                rows.append((start, t, m.group(4), msg.get(g, '') if m.group(4) == 'restore file' else ''))
events.sort()
n, last, hist = 0, 0.0, [0.0, 0.0, 0.0]
for t, d in events:
    hist[min(n, 2)] += t - last
    n, last = n + d, t
print('wall %.2f s: demand of 0 cores %.2f s, 1 core %.2f s, 2 or more %.2f s' % (last, hist[0], hist[1], hist[2]))
for start, end, kind, what in sorted(rows):
    print('%7.3f %7.3f %6.3f %s %s' % (start, end, end - start, kind, what))

-- Timed actions: at() once, every() repeatedly during chaos; selectors pick
-- brokers at the moment the action runs.
scenario { name = "timed_faults", seeds = "1..2" }

cluster { replicas = 5 }
workload {
  producers = { count = 2, rate = 100, timeout_ms = 500, retries = 20 },
  consumers = { count = 1, idempotent = true },
}
phases { chaos = 12, heal = 2, drain = 10 }

-- Remember who was paused so the right broker is resumed later.
local paused
at(1, function() paused = leader(); log("pause {%s}", table.concat(paused, ",")); pause(paused) end)
at(2, function() resume(paused) end)

at(3, function() split(minority()) end)
at(5, function() heal() end)

at(6.5, function() kill(random_nodes(1)) end)     -- kill -9: page cache survives

at(8, function() isolate(followers()) end)        -- the leader alone: no quorum
at(9, function() heal() end)

-- every(N, fn): fn runs every N seconds during chaos (t = N, 2N, ...).
-- Here: a safety net that restarts whatever is down, and a progress note.
every(3, function() restart(down()) end)
every(4, function() log("t=%.1f s: up {%s}, down {%s}", now(), table.concat(up(), ","),
                         table.concat(down(), ",")) end)

expect { no_loss = true, no_duplicates = true, replica_agreement = true }

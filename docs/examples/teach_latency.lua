-- A lesson on a time-based expectation: the same cluster on a fast and a
-- slow disk. With fsync=always every confirm waits for an fsync on a
-- majority, so a 40 ms fsync puts the publish->confirm p99 above 30 ms.
scenario { name = "teach_latency", seeds = "1..2" }

cluster { replicas = 3, acks = "quorum", fsync = "always" }
workload { producers = { rate = 100 }, consumers = { idempotent = true } }
phases { chaos = 4, heal = 1, drain = 5 }

at(1, function() disk_slow(all(), 40) end)   -- weak side's disk; see below

expect { no_loss = true, replica_agreement = true, latency_p99_ms = 30 }

teach {
  lesson = "fsync=always makes every confirm wait for the disk: a slow disk is slow confirms",
  violation = "latency",
  weak = { fsync = "always" },
  strong = { fsync = "interval:50" },
}

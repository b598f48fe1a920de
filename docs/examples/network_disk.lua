-- Network and disk actions.
scenario { name = "network_disk", seeds = "1..2" }

cluster { replicas = 3, ack_timeout_ms = 1000 }
disk { crash = "torn", keep = 0.5 }
workload {
  producers = { rate = 100, timeout_ms = 500, retries = 20 },
  consumers = { idempotent = true },
}
phases { chaos = 12, heal = 2, drain = 10 }

at(1, function() links(all(), { loss = 0.02, duplicate = 0.02, reorder = 0.05 }) end)
at(2, function() links(leader(), { latency_ms = 20 }) end)
at(3, function() heal() end)
at(3.5, function() one_way(leader(), others(leader())) end)
at(5, function() heal() end)
at(5.5, function() clog(followers(), 1) end)          -- links stall for 1 s
at(7, function() disk_slow(all(), 15) end)            -- fsync takes 15 ms
at(8, function() disk_corrupt(node(2), 8); crash(node(2)) end)
at(9, function() restart(down()); heal() end)
at(10, function() clock(node(0), 250, 1000) end)      -- +250 ms, 1000 ppm fast

expect { no_loss = true, no_duplicates = true, no_phantoms = true, replica_agreement = true }

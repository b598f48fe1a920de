-- shrink_allops: every fault the Lua API has, once or more (and random_nodes
-- draws from every()), so tests/test_scenarios_shrink.c can check that the
-- recorded schedule, written back as explicit at() actions, repeats the run's
-- trace hash for each kind of call. availability = 0.9999 fails on purpose.
scenario { name = "allops", seeds = "1" }
cluster { replicas = 5, acks = "quorum" }
workload { producers = { count = 2, rate = 50 }, consumers = { count = 2 } }
phases { chaos = 14, heal = 2, drain = 5 }
at(0.5, function() clock(node(1), -12.345678, 300) end)
at(1, function() links(nodes(0, 2), { loss = 0.1, latency_ms = 3.3333, reorder = 0.05, reorder_window_ms = 2.5 }) end)
at(1.7, function() clog(node(3), 0.123456789) end)
at(2, function() disk_corrupt(node(4), 3, "log"); disk_slow(node(2), 7.77) end)
at(2.5, function() disk_fast(node(2)); torn_writes(node(1), 0.3); disk_full(node(0), true) end)
at(3, function() disk_full(node(0), false); one_way(node(1), nodes(2, 3)) end)
at(4, function() heal(); bridge(nodes(0, 1), 2) end)
at(5, function() heal(); split(nodes(0, 1)) end)
at(6, function() heal(); partition_client(producer(1), nodes(0, 1)); crash_client(consumer(1)) end)
at(7, function() restart_client(consumer(1)); pause(node(3)); kill(node(4)) end)
at(8, function() resume(node(3)); restart(node(4)); stop(node(1)) end)
every(2.5, function() local m = random_nodes(2) end)
at(9, function() restart(node(1)); wipe(node(2)); ring() end)
at(10, function() heal(); power_loss() end)
at(11, function() restart(all()); disk_read_errors(node(3)) end)
expect { availability = 0.9999 }

-- Exercises selectors and faults from actions; uses math.random and log.
scenario { name = "engine_actions" }
cluster { replicas = 3 }
workload { producers = { rate = 50 } }
phases { chaos = 3, heal = 1, drain = 2 }
at(0.5, function()
  local l = leader()
  log("leader at %.3f: %d nodes, pick %d", now(), #l, math.random(1, 3))
  pause(followers())
end)
at(1.0, function() resume(all()); isolate(node(0)) end)
at(1.5, function() heal(); links(all(), { loss = 0.1, latency_ms = 5 }) end)
every(0.7, function() restart(down()) end)
expect { no_loss = false, no_duplicates = false, replica_agreement = false }

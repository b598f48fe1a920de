-- rolling_restarts: an operator upgrades the cluster one broker at a time
-- (graceful stop, 2 s down, restart, 2 s to catch up). A majority is always
-- up, so the cluster stays available; stopping the leader hands over to a
-- follower. Nothing confirmed may be lost or applied twice.
scenario {
  name = "rolling_restarts",
  description = "Each broker in turn is stopped gracefully and restarted "
    .. "(a rolling upgrade); a majority is up at every moment.",
  seeds = "1..10",
}

cluster { replicas = 3 }
workload {
  producers = { count = 1, rate = 200, idempotent = true, timeout_ms = 500, retries = 20 },
  consumers = { count = 1, ack = "manual", idempotent = true },
}
phases { chaos = 14, heal = 2, drain = 15 }

for i = 0, 2 do
  at(1 + 4 * i, function() log("upgrade n%d", i); stop(node(i)) end)
  at(3 + 4 * i, function() restart(node(i)) end)
end

expect {
  no_loss = true, no_duplicates = true, no_phantoms = true, replica_agreement = true,
  availability = 0.8, recovery = 2, max_unavailable = 2,
}

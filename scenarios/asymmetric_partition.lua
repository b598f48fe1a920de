-- asymmetric_partition: one-way link failures, the kind a misconfigured
-- firewall makes. First the leader can receive but not send (its followers
-- hear no heartbeat and elect a new leader); later the followers cannot
-- reach the leader (it still sends heartbeats but hears no acknowledgement,
-- so check_quorum makes it step down). Neither may lose or duplicate.
scenario {
  name = "asymmetric_partition",
  description = "One-way partitions: the leader's outbound links fail, then "
    .. "its inbound links.",
  seeds = "1..10",
}

cluster { replicas = 3, check_quorum = true, pre_vote = true }
workload {
  producers = { count = 1, rate = 200, idempotent = true, timeout_ms = 500, retries = 20 },
  consumers = { count = 1, ack = "manual", idempotent = true },
}
phases { chaos = 15, heal = 3, drain = 15 }

at(3, function()
  local l = leader()
  log("leader cannot send to its peers")
  one_way(l, others(l))
end)
at(7, function() heal() end)
at(9, function()
  local l = leader()
  log("peers cannot send to the leader")
  one_way(others(l), l)
end)
at(13, function() heal() end)

expect {
  no_loss = true, no_duplicates = true, no_phantoms = true, replica_agreement = true,
  availability = 0.5, recovery = 3, max_unavailable = 5,
}

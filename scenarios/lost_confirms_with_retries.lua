-- lost_confirms_with_retries: the client links to the leader slow down far
-- beyond the producers' 250 ms timeout, so confirms come back too late —
-- from the producer's side a confirm that is late is a confirm that is lost:
-- it cannot tell "not stored" from "stored, answer lost", so it retries.
-- Idempotent producers resend the same (producer id, sequence) and the
-- broker's replicated dedup table drops the copy: no duplicates, and the
-- late confirm still counts. Consumers are NOT idempotent here, so any copy
-- the broker stored would show up as a duplicate processing.
-- (A spike, not packet loss: loss on the consumer's links would also lose
-- ACKs, and the redeliveries that follow are at-least-once duplicates no
-- producer setting can prevent; flaky_network covers that with an
-- idempotent consumer.)
scenario {
  name = "lost_confirms_with_retries",
  description = "Confirms arrive after the producer timeout; producers retry "
    .. "idempotently and broker dedup keeps exactly one copy.",
  seeds = "1..10",
}

-- A long election timeout: the spike also slows heartbeats, and this
-- scenario is about retries, not failover.
cluster { replicas = 3, dedup = true, election_timeout_ms = 1500, heartbeat_ms = 100 }
workload {
  producers = { count = 2, rate = 100, idempotent = true, timeout_ms = 250,
                retries = 30, backoff_ms = 50 },
  consumers = { count = 1, ack = "manual", idempotent = false },
}
phases { chaos = 12, heal = 3, drain = 15 }

at(4, function() log("latency spike"); links(all(), { latency_ms = 300 }) end)
at(6.5, function() heal() end)
at(8, function() log("latency spike"); links(all(), { latency_ms = 300 }) end)
at(10.5, function() heal() end)

expect {
  no_loss = true, no_duplicates = true, no_phantoms = true, replica_agreement = true,
  recovery = 3,
}

-- flaky_network: every link (broker<->broker and broker<->client) drops 5%,
-- duplicates 5% and reorders 10% of its messages for ten seconds. Raft
-- retransmits; producers retry idempotently; a lost DELIVER or ACK leaves a
-- delivery unacked, so ack_timeout_ms redelivers it after a second. A
-- redelivered message the consumer already processed (its ACK was the one
-- lost) is at-least-once by nature: the consumer is idempotent, which is
-- what "no duplicates" means end to end.
scenario {
  name = "flaky_network",
  description = "10 s of 5% loss, 5% duplication and 10% reordering on every "
    .. "link, clients included.",
  seeds = "1..10",
}

cluster { replicas = 3, ack_timeout_ms = 1000 }
workload {
  producers = { count = 2, rate = 200, idempotent = true, timeout_ms = 300, retries = 30 },
  consumers = { count = 1, ack = "manual", idempotent = true },
}
phases { chaos = 14, heal = 3, drain = 15 }

at(2, function() links(all(), { loss = 0.05, duplicate = 0.05, reorder = 0.1 }) end)
at(12, function() heal() end)

expect {
  no_loss = true, no_duplicates = true, no_phantoms = true, replica_agreement = true,
  availability = 0.6, recovery = 3,
}

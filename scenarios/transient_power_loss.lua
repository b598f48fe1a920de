-- transient_power_loss: the producer publishes transient messages
-- (persistent = false, AMQP delivery mode 1) and every broker loses power,
-- twice, with a backlog in the queue. On a classic single-node broker a
-- transient message lives in memory and dies with the power; here, as in
-- RabbitMQ's quorum queues, every message goes through the replicated,
-- fsynced log whatever its delivery mode, so transient messages survive
-- exactly like persistent ones. What decides survival is fsync and acks
-- (see teach_fsync), not the delivery mode.
scenario {
  name = "transient_power_loss",
  description = "Transient (persistent = false) messages under whole-cluster power "
    .. "loss: the replicated log keeps them like persistent ones.",
  seeds = "1..5",
}

cluster { replicas = 3, acks = "quorum", fsync = "always" }
disk { crash = "torn", keep = 0.5 }
workload {
  producers = { rate = 200, persistent = false, timeout_ms = 500, retries = 30 },
  consumers = { idempotent = true, processing_ms = 6 },
}
phases { chaos = 12, heal = 3, drain = 20 }

at(5, function() power_loss() end)
at(6, function() restart(all()) end)
at(9, function() power_loss() end)
at(10, function() restart(all()) end)

expect {
  no_loss = true, no_duplicates = true, no_phantoms = true, replica_agreement = true,
  recovery = 3,
}

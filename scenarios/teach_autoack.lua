-- teach_autoack: with auto ack the broker considers a message consumed the
-- moment it sends it; the consumer holds up to `prefetch` deliveries in
-- memory, and when it crashes they are gone — nobody will ever process
-- them. With manual ack those deliveries stay unacked on the broker, and
-- when the dead consumer's session ends they are redelivered (processed
-- twice if the crash came after processing: duplicates are expected in both
-- variants, so no_duplicates is not checked).
scenario {
  name = "teach_autoack",
  description = "Consumer ack=auto vs ack=manual when consumers crash with "
    .. "deliveries in hand.",
  seeds = "1..5",
}

cluster { replicas = 3, session_timeout_ms = 1000 }
workload {
  producers = { count = 1, rate = 200, idempotent = true },
  consumers = { count = 2, prefetch = 32, processing_ms = 4, crash_before_ack = 0.01 },
}
phases { chaos = 10, heal = 2, drain = 25 }

expect { no_loss = true, no_duplicates = false, no_phantoms = true, replica_agreement = true }

teach {
  lesson = "ack=auto: deliveries count as consumed when sent, so a consumer "
    .. "crash loses what it held; ack=manual redelivers them",
  violation = "no_loss",
  weak = { ack = "auto" },
  strong = { ack = "manual" },
}

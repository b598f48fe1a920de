-- fire_and_forget: the producer does not use publisher confirms: it sends
-- each message once and moves on. Two leader crashes later, some of its
-- messages were never delivered — and nobody knows: the producer was never
-- told, so it never retried, and no checker can call it a loss, because
-- nothing was promised. no_loss shows them as unconfirmed_missing. The
-- probe producer, which waits for confirms and retries, loses nothing.
-- (Compare leader_crash.lua: the same faults with confirms.)
scenario {
  name = "fire_and_forget",
  description = "A producer without publisher confirms through two leader crashes: "
    .. "messages vanish silently (unconfirmed_missing); the confirmed probe loses none.",
  seeds = "1..5",
}

cluster { replicas = 3, acks = "quorum", fsync = "always" }
workload {
  producers = { rate = 200, confirms = false },
  consumers = { idempotent = true },
}
phases { chaos = 10, heal = 2, drain = 8 }

at(3, function() crash(leader()) end)
at(4, function() restart(down()) end)
at(7, function() crash(leader()) end)
at(8, function() restart(down()) end)

expect { no_loss = true, no_duplicates = true, no_phantoms = true, replica_agreement = true }

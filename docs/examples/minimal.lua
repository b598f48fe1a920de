-- The smallest useful scenario: defaults everywhere, one leader crash.
scenario { name = "minimal", seeds = "1..2" }

phases { chaos = 6, heal = 2, drain = 8 }

at(3, function() crash(leader()) end)
at(4, function() restart(down()) end)

-- The default consumer is not idempotent: a delivery whose ack died with the
-- leader is redelivered and processed again (at-least-once), so duplicates
-- are not expected here.
expect { no_loss = true, no_duplicates = false, replica_agreement = true }

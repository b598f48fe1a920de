-- teach_election: a follower is isolated for a while; the other two keep
-- committing without it, so its log falls behind. Without pre-vote it keeps
-- campaigning while isolated, driving its term far above the others'. Then
-- the partition heals and, at the same moment, the leader dies.
-- election=unclean lets any live replica win: the stale replica's high term
-- gets it elected, and as leader it forces its short log onto the others —
-- Raft's log-matching repair truncates the committed entries it lacks.
-- election=safe applies Raft's vote rule (grant only to a candidate whose
-- log is at least as up-to-date): the stale replica's term forces a new
-- election, but only the up-to-date follower can win it.
-- pre_vote=false in both variants: pre-vote would stop the stale replica's
-- term inflation and hide the difference.
scenario {
  name = "teach_election",
  description = "election=unclean vs safe: a stale replica campaigns with a "
    .. "high term just as the leader dies.",
  seeds = "1..6",
}

cluster { replicas = 3, acks = "quorum", fsync = "always", pre_vote = false,
          check_quorum = true }
workload {
  producers = { count = 1, rate = 250, idempotent = true, timeout_ms = 500, retries = 30 },
  consumers = { count = 1, ack = "manual", idempotent = true, processing_ms = 5 },
}
phases { chaos = 12, heal = 2, drain = 20 }

-- n2 is cut off at t=2 whatever its role: if it led, the other two elect a
-- leader among themselves and n2 (which cannot commit alone) becomes the
-- stale one all the same.
at(2, function()
  log("isolate n2; the others keep committing without it")
  isolate(node(2))
end)
at(8, function()
  log("heal and crash the leader at once")
  local l = leader()
  heal()
  crash(l)
end)
at(10, function() restart(down()) end)

expect { no_loss = true, no_duplicates = true, no_phantoms = true, replica_agreement = true }

teach {
  lesson = "election=unclean lets a stale replica lead and truncate committed "
    .. "entries; Raft's up-to-date vote rule forbids it",
  violation = "no_loss",
  weak = { election = "unclean" },
  strong = { election = "safe" },
}

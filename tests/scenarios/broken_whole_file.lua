-- several whole-file mistakes: each is reported
phases { chaos = 4, heal = 1, drain = 1 }
workload { dead_letter_consumers = 1, consumers = { ack = "auto", poison = { every = 5 } } }
at(9, function() end)
every(5, function() end)

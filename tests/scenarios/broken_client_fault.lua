-- a client fault needs a client handle, and the client must exist
workload { producers = { count = 1 } }
phases { chaos = 3, heal = 1, drain = 1 }
at(1.5, function() crash_client(producer(3)) end)

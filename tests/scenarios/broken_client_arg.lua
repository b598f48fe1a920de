-- a broker number is not a client
phases { chaos = 3, heal = 1, drain = 1 }
at(1.5, function() crash_client(0) end)

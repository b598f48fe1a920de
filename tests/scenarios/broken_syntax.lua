scenario { name = "broken" }
cluster { replicas = 3
phases { chaos = 1 }

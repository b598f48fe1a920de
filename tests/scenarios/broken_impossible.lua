-- seven replicas is the maximum
cluster { replicas = 9 }

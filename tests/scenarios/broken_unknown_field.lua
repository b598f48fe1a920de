-- typo in a field name
cluster { replica = 3 }

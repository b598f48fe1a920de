-- a mistyped declaration
scenario { name = "typo" }
clustr { replicas = 3 }

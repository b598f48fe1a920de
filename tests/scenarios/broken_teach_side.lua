-- mistakes inside a teach side's own tables
expect { no_loss = true }
teach {
  lesson = "x", violation = "no_loss",
  weak = { workload = { consumers = { idempotnt = true } } },
  strong = { expect = 5 },
}

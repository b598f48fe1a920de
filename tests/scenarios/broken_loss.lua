-- probabilities are 0..1
network {
  loss = 1.5,
}

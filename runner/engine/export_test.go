package engine

// Waiting is the number of steps waiting for a slot of s.
func Waiting(s *Slots) int { return s.waiting() }

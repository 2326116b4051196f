"""Distributor recruitment (分销员招募): open, approval (apply → approve/reject), threshold."""

"""Withdrawals (提现): distributors ask for their available balance; finance pays in batches."""

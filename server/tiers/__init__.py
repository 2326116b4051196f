"""Distributor tiers (分销员等级): rates by tier, promotion on events, operator demotion."""

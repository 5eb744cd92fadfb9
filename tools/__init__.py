"""Operator tools: the offline plan and friends."""

"""Outbound webhooks, the adapter side: signing (Standard Webhooks), the HTTP sender with its
destination guard, and the retry schedule. Which endpoints exist and what to send them is decided
elsewhere; these modules only sign, send and say what happened."""

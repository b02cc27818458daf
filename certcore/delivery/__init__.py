"""Delivery of one-time codes and notices to a customer's mobile (SMS) or e-mail."""

"""The SMS edge: the Twilio messaging webhook, and the outbox jobs that send texts and place calls."""

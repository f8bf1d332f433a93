"""Outbound email: SMTP connections with encrypted passwords (crypto.py), messages rendered from a template and a
person's record (render.py), SMTP delivery (smtp.py), and sends that survive a crash without sending anyone twice
(sending.py). The database side lives in operations/email.py."""

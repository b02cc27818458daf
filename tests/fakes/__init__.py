"""Faithful fakes of the platform clouds this machine cannot reach (LINE, Telegram), served on
loopback; the real SDKs are pointed at them."""

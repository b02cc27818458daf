"""The channels customers reach CertDesk through, one module each behind one contract
(`ChannelAdapter`): the console (`certdesk chat`) today; LINE, Telegram and the web chat
next."""

from bot.channels.base import ChannelAdapter

__all__ = ["ChannelAdapter"]

"""The channels customers reach CertDesk through, one module each behind one contract
(`ChannelAdapter`): the console (`certdesk chat`), LINE, Telegram and the web chat. `Channels`
holds the ones a process runs, so a push for a conversation goes out on its own channel."""

from bot.channels.base import ChannelAdapter, Channels, Undelivered, channel_of

__all__ = ["ChannelAdapter", "Channels", "Undelivered", "channel_of"]

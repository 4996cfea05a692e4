"""Sensors: wait on something DingTalk holds (an approval someone else started)."""

"""One module per DingTalk API area; each defines ``router``. The app includes every module here."""

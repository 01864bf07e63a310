"""Speech in and out: the offline recognizer and voices, OpenAI-compatible
providers, the web app's dictation and read aloud, and ``/v1/audio``."""

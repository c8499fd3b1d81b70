"""`talkrt eval`: what a viewer sees in a talking-face video, measured with an independent face
detector (dlib) against the speech. Needs the `eval` extra."""

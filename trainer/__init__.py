"""The bundled PyTorch trainer and validator; reads the same skeleton file as posedata."""
from .threads import apply_thread_policy

# Every torch command reaches torch through this package: setting the policy here puts it in
# place before torch starts its OpenMP threads, whichever trainer module is imported first.
apply_thread_policy()

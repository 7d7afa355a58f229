"""A plugin module whose import fails with a multi-line message, as many native-library
import errors do (numpy's and PortAudio's run to a dozen lines)."""

raise ImportError("libfancydsp.so.3: cannot open shared object file: No such file or directory\n"
                  "\n"
                  "IMPORTANT: PLEASE READ THIS FOR ADVICE ON HOW TO SOLVE THIS ISSUE!\n"
                  "Importing the fancydsp C-extensions failed.")

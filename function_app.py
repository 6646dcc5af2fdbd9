"""The Azure Functions app: create it, register the blueprints. Nothing else."""
import azure.functions as func

from sms.api import bp as api
from sms.callbacks import bp as callbacks
from sms.worker import bp as worker

app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)
app.register_functions(api)
app.register_functions(callbacks)
app.register_functions(worker)

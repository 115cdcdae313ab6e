/* The phone workspace's small helpers. Plain ES5: the in-app browsers of WeCom and DingTalk are not always recent. */
(function(){
  var forms=document.querySelectorAll('form[data-confirm]');
  for(var i=0;i<forms.length;i++){
    forms[i].addEventListener('submit',function(e){
      if(!window.confirm(this.getAttribute('data-confirm'))){e.preventDefault()}
    });
  }
})();

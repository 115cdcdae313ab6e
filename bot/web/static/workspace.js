/* The phone workspace's small helpers. Plain ES5: the in-app browsers of WeCom and DingTalk are not always recent. */
(function(){
  var forms=document.querySelectorAll('form[data-confirm]');
  for(var i=0;i<forms.length;i++){
    forms[i].addEventListener('submit',function(e){
      if(!window.confirm(this.getAttribute('data-confirm'))){e.preventDefault()}
    });
  }
})();

/* == ws-request: person picker search, live route preview on /m/new/{key} == */
(function(){
  document.documentElement.className+=' ws-js';
  function each(list,fn){for(var i=0;i<list.length;i++){fn(list[i])}}
  each(document.querySelectorAll('input.ws-pick-search'),function(box){
    var select=document.getElementById(box.getAttribute('data-for'));
    if(!select){return}
    var all=[];
    each(select.options,function(o){all.push(o)});
    box.addEventListener('input',function(){
      var q=box.value.replace(/^\s+|\s+$/g,'');
      var keep=select.value;
      while(select.options.length){select.remove(0)}
      each(all,function(o){
        if(!o.value||!q||o.text.indexOf(q)>=0){select.appendChild(o)}
      });
      select.value=keep;
      if(q&&(!keep||select.value!==keep)){select.selectedIndex=select.options.length>1?1:0}
    });
  });
  var form=document.getElementById('ws-new');
  var out=document.getElementById('ws-preview');
  if(!form||!out||!window.FormData){return}
  var timer=null;
  function refresh(){
    var xhr=new XMLHttpRequest();
    xhr.open('POST',form.getAttribute('data-preview'));
    xhr.onload=function(){if(xhr.status===200){out.innerHTML=xhr.responseText}};
    xhr.send(new FormData(form));
  }
  function later(){if(timer){clearTimeout(timer)}timer=setTimeout(refresh,400)}
  form.addEventListener('input',later);
  form.addEventListener('change',later);
  refresh();
})();

/* == 督办 page (/m/s/...): filter the team list as the manager types == */
(function(){
  var boxes=document.querySelectorAll('input.sv-search');
  for(var i=0;i<boxes.length;i++){
    boxes[i].addEventListener('input',function(){
      var q=this.value.replace(/^\s+|\s+$/g,'');
      var items=this.parentNode.querySelectorAll('.sv-people li');
      for(var j=0;j<items.length;j++){
        items[j].style.display=(!q||items[j].textContent.indexOf(q)>=0)?'':'none';
      }
    });
  }
})();

/* == 通知 compose (/m/n/new): show the meeting / poll / announcement parts for the chosen kind == */
(function(){
  var form=document.getElementById('nt-new');
  if(!form){return}
  var parts=form.querySelectorAll('[data-kind-only]');
  function show(){
    var picked=form.querySelector('input[name=kind]:checked');
    var kind=picked?picked.value:'';
    for(var i=0;i<parts.length;i++){
      parts[i].style.display=parts[i].getAttribute('data-kind-only')===kind?'':'none';
    }
  }
  // one tap sends once: the button stays pressed until the next page
  form.addEventListener('submit',function(){
    var buttons=form.querySelectorAll('button[type=submit]');
    for(var b=0;b<buttons.length;b++){buttons[b].disabled=true}
  });
  var radios=form.querySelectorAll('input[name=kind]');
  for(var j=0;j<radios.length;j++){radios[j].addEventListener('change',show)}
  show();
})();
